; Inno Setup 6 script: installs the one-folder build per machine, with Start-menu and desktop shortcuts.
; Built by installer\windows\build.ps1 (ISCC /DAppVersion=x.y.z installer\windows\spoke.iss).
;
; Patient data never lives in the program folder: it is in C:\ProgramData\Spoke (SPOKE_DATA_DIR, set for
; the whole machine so that every staff account of the PC sees the same register). Installing a newer
; version over an older one replaces only the program; the app upgrades the database on its first start
; after taking a copy, and puts the copy back if the upgrade fails. Uninstalling keeps the data unless
; the user says, in a second question, to delete it.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif

[Setup]
AppId={{5C0E2F7A-9B1D-4C39-8E59-2D6A1B3C7F10}
AppName=Spoke
AppVersion={#AppVersion}
AppPublisher=Spoke developers
DefaultDirName={autopf}\Spoke
DefaultGroupName=Spoke
PrivilegesRequired=admin
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\build
OutputBaseFilename=Spoke-Setup-{#AppVersion}
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ChangesEnvironment=yes
CloseApplications=yes
UninstallDisplayIcon={app}\spoke.exe

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"
Name: "hindi"; MessagesFile: "compiler:Languages\Hindi.islu"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"

[Dirs]
; Every account of the PC may write the shared register.
Name: "{commonappdata}\Spoke"; Permissions: users-modify; Flags: uninsneveruninstall

[Files]
Source: "..\..\build\dist\spoke\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Registry]
Root: HKLM; Subkey: "SYSTEM\CurrentControlSet\Control\Session Manager\Environment"; ValueType: expandsz; \
  ValueName: "SPOKE_DATA_DIR"; ValueData: "{commonappdata}\Spoke"; Flags: uninsdeletevalue

[Icons]
Name: "{group}\Spoke"; Filename: "{app}\spoke.exe"
Name: "{group}\Spoke self-check"; Filename: "{cmd}"; Parameters: "/k ""{app}\spoke.exe"" selfcheck"
Name: "{group}\{cm:UninstallProgram,Spoke}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\Spoke"; Filename: "{app}\spoke.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\spoke.exe"; Description: "{cm:LaunchProgram,Spoke}"; Flags: nowait postinstall skipifsilent

[Code]
procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if CurUninstallStep = usPostUninstall then
    if MsgBox('Spoke has been removed. The patient records are still on this computer in ' +
              ExpandConstant('{commonappdata}\Spoke') + '.' + #13#10#13#10 +
              'Delete ALL patient records from this computer as well? This cannot be undone.',
              mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES then
      if MsgBox('Really delete every patient record, photo and recording on this computer?',
                mbCriticalError, MB_YESNO or MB_DEFBUTTON2) = IDYES then
        DelTree(ExpandConstant('{commonappdata}\Spoke'), True, True, True);
end;
